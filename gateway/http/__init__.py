"""HTTP conventions every route shares: the error shape, strict input validation, guards, the OpenAPI document."""
