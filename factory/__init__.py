"""swap-factory: everything that makes data (faces, identity encoders, swapper, shards)."""
from factory.paths import register_resolvers

register_resolvers()
