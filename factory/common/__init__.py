"""Shared by every stage: repository paths and config resolvers, paths-or-URLs storage, WebDataset
shards, image decoding and resizing, soft masks and the dense face mesh, contact sheets, and the one
Lightning `fit()` every training stage uses. Imports nothing from the stages."""
