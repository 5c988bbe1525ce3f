"""oso_gateway.web"""
