"""The §2/§3 core: identity normalisation, the matching SQL, matching itself and the types every stage
passes around (`model`, a leaf). Depends on nothing else in `pipelines` but `config`."""
