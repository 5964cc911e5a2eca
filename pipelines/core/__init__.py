"""The §2/§3 core: identity normalisation, the matching SQL, matching itself and the types every stage
passes around (`model`, a leaf). `errors` is the bottom of the whole package: everything may import it."""
