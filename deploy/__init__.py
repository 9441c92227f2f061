"""Deployment helpers that are code: the local broker. (Compose files and manifests live beside.)"""
