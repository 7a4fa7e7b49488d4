"""Demand forecasts at the edge: the streaming daily sales series and their snapshot, scoring
the bundle's ONNX models, the online correction, and the demand distribution behind buffers.
"""
