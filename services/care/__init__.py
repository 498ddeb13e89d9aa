"""After-sales service (售后服务): follow-up calls, ratings and complaint tickets."""
