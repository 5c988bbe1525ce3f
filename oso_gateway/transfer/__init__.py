"""oso_gateway.transfer"""
