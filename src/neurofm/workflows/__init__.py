"""End-to-end workflows that chain prepare, fit, evaluate and generate (the demo)."""
