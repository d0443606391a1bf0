"""Federation membership that the dashboard cannot forge (issue 24, item 1).

The federation's administrator holds an Ed25519 key outside the dashboard (NVFlare's provisioning keeps its root key
with the project admin the same way). With it they sign, for each admitted plant, a `MembershipCertificate`
binding the plant's name to its identity key (Ed25519) and its secure-aggregation key (X25519), and a
`RevocationList` of withdrawn certificates. Plants pin the federation's public key at enrolment (out of band) and
mask only in cohorts whose every member's certificate checks against it (`check_cohort`). The dashboard only
relays these documents: they verify themselves, so a stolen dashboard database or CA folder admits no one.

Modules: `documents` (the signed documents and their canonical encoding), `cohort` (the plant's check of a
cohort), `admin` (the administrator's files: key pair, issued serials, the current revocation list) and
`__main__` (the administrator's CLI: `python -m shared.membership keygen|admit|revoke|show`).
"""

from shared.membership.cohort import check_cohort
from shared.membership.documents import (MembershipCertificate, MembershipRequest, RevocationList, federation_id,
                                         load_public_pem, public_pem)

__all__ = ["MembershipCertificate", "MembershipRequest", "RevocationList", "check_cohort", "federation_id",
           "load_public_pem", "public_pem"]
