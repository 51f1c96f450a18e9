"""What wraps every request: whole bodies within a deadline, admission, authentication, rate limits."""
