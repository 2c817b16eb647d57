"""dotnet-delivery: load the validated config for this stack's role and build it.

Everything lives in the ``components`` library; see README.md.
"""

from components.stacks import main

main()
