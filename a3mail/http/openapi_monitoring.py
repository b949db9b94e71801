"""JSON Schemas of the health, metrics and performance responses (OpenAPI components)."""

from __future__ import annotations

from a3mail.http.openapi_schemas import COUNT, NUMBER, STR, TIME, Schema, array, obj

_STATUS: Schema = {"type": "string", "enum": ["healthy", "degraded", "unhealthy"]}
_OBJECT: Schema = {"type": "object"}
_CHECK = obj({"status": _STATUS, "response_time": NUMBER, "details": _OBJECT})

MONITORING_SCHEMAS: dict[str, Schema] = {
    "HealthReport": obj(
        {
            "status": _STATUS,
            "timestamp": TIME,
            "uptime": COUNT,
            "version": STR,
            "checks": {"type": "object", "additionalProperties": _CHECK},
            "process": _OBJECT,
            "thresholds": _OBJECT,
        },
        optional=("process", "thresholds"),
    ),
    "HealthCheck": obj(
        {
            "component": STR,
            "timestamp": TIME,
            "status": _STATUS,
            "response_time": NUMBER,
            "details": _OBJECT,
        }
    ),
    "SystemMetrics": obj(
        {
            "timestamp": TIME,
            "cpu_usage": NUMBER,
            "memory_usage": COUNT,
            "memory_total": COUNT,
            "disk_usage": COUNT,
            "disk_total": COUNT,
            "network_rx_bytes": COUNT,
            "network_tx_bytes": COUNT,
            "load_average": obj({"1m": NUMBER, "5m": NUMBER, "15m": NUMBER}),
            "active_connections": COUNT,
            "uptime": COUNT,
        }
    ),
    "ApplicationMetrics": obj(
        {
            "timestamp": TIME,
            "total_requests": COUNT,
            "successful_requests": COUNT,
            "client_errors": COUNT,
            "failed_requests": COUNT,
            "avg_response_time": NUMBER,
            "p95_response_time": NUMBER,
            "p99_response_time": NUMBER,
            "requests_per_second": NUMBER,
            "window_seconds": NUMBER,
            "active_sessions": COUNT,
            "sessions_by_protocol": {"type": "object", "additionalProperties": COUNT},
            "queue_sizes": {"type": "object", "additionalProperties": COUNT},
            "cache_hit_rates": {"type": "object", "additionalProperties": NUMBER},
        }
    ),
    "CustomMetric": obj(
        {
            "name": STR,
            "type": {"type": "string", "enum": ["counter", "gauge"]},
            "exported_as": STR,
            "series": array(
                obj(
                    {
                        "labels": {"type": "object", "additionalProperties": STR},
                        "value": NUMBER,
                        "updated_at": TIME,
                    }
                )
            ),
        }
    ),
    "PerformanceStats": obj(
        {
            "timestamp": TIME,
            "connection_pool": _OBJECT,
            "cache_performance": _OBJECT,
            "request_performance": _OBJECT,
            "database": _OBJECT,
        }
    ),
    "Recommendations": obj(
        {
            "timestamp": TIME,
            "recommendations": array(
                obj(
                    {
                        "category": STR,
                        "priority": {"type": "string", "enum": ["high", "medium", "low"]},
                        "title": STR,
                        "description": STR,
                        "impact": STR,
                        "action": STR,
                        "evidence": _OBJECT,
                    }
                )
            ),
        }
    ),
    "OptimizeResult": obj(
        {
            "status": {"type": "string", "enum": ["applied"]},
            "applied": array(obj({"type": STR, "before": {}, "after": {}})),
        }
    ),
}
