-- reserved placeholder (filled in by the engineer who owns it)
SELECT 1;
