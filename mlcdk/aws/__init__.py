"""The library's AWS calls for the user: preflight, the acceptance check and the job commands (boto3).

The CLI formats what these return (docs/design.md).
"""
