"""``trainq dashboard``: a read-only web view of runs, sweeps and the queue (Starlette + uvicorn).

The pages render on the server (Jinja2); charts are uPlot, shipped in ``static/`` so that the
dashboard works without internet access.
"""
