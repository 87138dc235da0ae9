"""Stage 3 — the swapper (claims 1-2): texture encoder, decoder of [texture ‖ identity] and consistency
discriminator (`networks`), their adversarial training (`training`, `data`), the held-out evaluation as
shipped, judged by a recogniser it never trained against (`evaluation`), and the weights that ship in
`weights/` (`shipped`)."""
