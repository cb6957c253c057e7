"""An organization's routing policy as one document: data classes, detectors,
routes, rules, the compliance matrix and a few settings.

Every change produces a new immutable version of the whole document
(`routing.models.PolicyVersion`); the data plane compiles the live version of
each organization into its snapshot. The document is plain JSON-compatible data,
normalized so that equal policies compare equal and export to identical YAML.
"""
