"""Code that runs in AWS (Lambda handlers, the deploy and migration steps).

Only stdlib + boto3. The Lambda handlers (``smoke_hook``, ``admission_hook``,
``approval_notifier``) are self-contained and ship as one-file assets; the CodeBuild step
scripts ship through the artifact bucket, where ``migrate.py`` runs next to the
``deploy.py`` whose helpers it reuses.
"""
