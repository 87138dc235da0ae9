"""Stage 4 — the dataset factory (claim 4): manipulation methods (`methods`, and `mesh_methods` on the
dense face mesh), source/target pairings, perturbations, the seeded plan of every sample, generation into
WebDataset shards as Lightning prediction (`generate`), the leakage audit and the dataset card."""
