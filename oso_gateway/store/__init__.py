"""oso_gateway.store"""
