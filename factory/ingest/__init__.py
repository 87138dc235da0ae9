"""Stage 1 — ingest real faces: image folders with identity labels (`sources`) are decoded (`images`,
a named reason for every unusable file), detected and aligned by MTCNN to one 5-point template
(`faces`), split by identity (`splits`) and written as the face store (`prepare`); `facedata` reads the
store back for every later stage."""
