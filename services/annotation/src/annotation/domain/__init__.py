"""Pure domain: vote validation, token checks and leaderboard maths (no FastAPI, no SQL)."""
