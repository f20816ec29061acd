"""Physical simulations that generate the tasks' data."""
