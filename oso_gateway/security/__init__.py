"""oso_gateway.security"""
