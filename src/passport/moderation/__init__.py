"""Account-information review (CAC Order No. 10 Arts. 7-8, COMPLIANCE I1): a deterministic text engine
(normalisation, lexicons, impersonation and contact rules) that answers allow, review or block with the
hits that explain it."""
