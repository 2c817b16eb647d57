"""dotnet-delivery: a reusable Pulumi component library for shipping an ASP.NET Core service.

Layout (see README.md and DESIGN.md):

* ``config``   - the typed, validated stack configuration (one model per stack role)
* ``naming`` / ``tags`` - the single source of every physical name and tag
* ``image`` / ``service`` / ``build`` / ``pipeline`` - components that only wire resources
* ``render``   - pure functions (no Pulumi): buildspec, appspec, task definition, IAM
  documents, Dockerfile, image tags, release timeline
* ``runtime``  - code that runs in AWS (Lambda handlers, the deploy step)
* ``testing``  - the offline engine: mocks, recorder, queries, policy runner
"""
