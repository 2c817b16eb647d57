"""Code that runs in AWS (Lambda handlers, the deploy step).

Only stdlib + boto3; each handler module is self-contained so it ships as a one-file asset.
"""
