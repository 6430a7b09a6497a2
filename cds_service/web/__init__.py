"""The HTTP layer: thin routes, responses, hardening, the request log, metrics, the playground.

Each route parses the request, calls one function of `cds_service.hooks` or
`cds_service.records`, and renders the result; nothing clinical is decided here.
"""
