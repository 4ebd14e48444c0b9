"""The portal: `acceldoctor serve`. Nodes upload reports; failures are grouped into problems; developers file feedback.

Nothing is imported here: the upload client (`acceldoctor.portal.client`) must import without the `portal` extra
(fastapi, sqlalchemy...), which only the server needs.
"""
