"""GraphQL object types, one module per SPEC type; each keeps its ORM row private."""
