"""The scoring endpoint: the ASGI app, its HTTP plumbing, the payload parser and row checks, model loading
with the compiled fast path, the inference log, and the local process's state file."""
