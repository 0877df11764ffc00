"""bootvol: boot volumes from images in milliseconds (image cache, file clones, copy offload).

See DESIGN.md for the flowchart and README.md for the commands.
"""

__version__ = "0.1.0"
