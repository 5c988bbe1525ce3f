"""oso_gateway.dossier"""
