"""How operations reach the schema and their results leave it: the GraphQL endpoint (`view`),
GraphQL over HTTP's media types and status codes (`http_protocol`), the two websocket protocols
(`websocket`, `websocket_messages`) and the per-operation contexts of streamed and websocket
operations (`streaming`).

Transport code may import the schema's own modules (context, loaders, errors, the compiled read
path) and the kernel of `app` (settings, state, the request's `RequestState`); the schema's types
and resolvers never import it.
"""
