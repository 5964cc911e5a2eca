"""The residual scan: a decoding search of every stored file for blacklisted identities the sweep should
have removed, its SQL, and its report block."""
