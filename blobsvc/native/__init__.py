"""The native ``/v1`` API: its routes, its resources and its OpenAPI document.

A front end is a route table (:mod:`~blobsvc.native.routes`) over resources
(:mod:`~blobsvc.native.resources`); the HTTP layer (:mod:`blobsvc.http`)
dispatches to it, and storage, auth, errors, metrics and logs are shared
with any other front end.
"""
