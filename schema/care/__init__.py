"""After-sales service: follow-up calls, ratings and complaint tickets."""
