"""One implementation per kind of dataset (docs/decisions/0252-storage-interface-proposal.md)."""
