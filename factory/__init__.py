"""swap-factory: everything that makes data, one sub-package per stage — `ingest` (real faces → face
store), `identity` (recognisers, claim 3), `swapper` (claims 1-2), `dataset` (the factory, claim 4) —
over `common` helpers. Imports point one way: pipelines → stages → common; a stage imports only
earlier stages (ingest < identity < swapper < dataset)."""
from factory.common.paths import register_resolvers

register_resolvers()
