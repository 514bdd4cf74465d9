"""What runs around every operation, whichever way it arrives: Strawberry schema extensions and
the checks they share with the compiled path's known reads.

- `limits`: a document's size, depth, aliases, directives and cost, refused before anything
  runs (`document_measures` measures them);
- `rate_limits`: each operation charged to its user's and its address's buckets
  (`app.rate_limit`);
- `telemetry`: the access log line and the operation metrics;
- `errors`: every error's ``extensions.code`` (`coded_error`, for single and streamed results).

They may import `app` services and kernel, `db` models, and `schema.context`; nothing here
imports a transport (`schema.transport`) or a resolver.
"""
