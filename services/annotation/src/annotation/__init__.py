"""Human votes on which model's results look most similar, the leaderboard and the voting UI."""
