"""What every page shares: error pages, security headers and input limits,
sessions and login, template helpers, work done after the response."""
