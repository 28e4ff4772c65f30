"""HC-SMoE: retraining-free merging of sparse MoE experts by hierarchical clustering (ICML 2025).

    stats = collect_stats(model, calibration_batches)                 # calibration.py
    reduce_model(model, stats, ReduceConfig(num_experts=k))           # methods.py (clustering.py, merging.py)
    save_reduced(model, "out/")                                       # checkpoint.py: a Hugging Face checkpoint
    AutoModelForCausalLM.from_pretrained("out/", trust_remote_code=True)   # (or load_reduced("out/"))
    save_stock(model, "stock/")       # or: a stock checkpoint of the family (E slots, no size reduction, no remote code)
"""
from .calibration import LayerStats, collect_stats
from .checkpoint import count_parameters, load_reduced, save_reduced, save_stock
from .clustering import hierarchical_cluster, kmeans
from .merging import MergedExperts, merge_experts
from .methods import ReduceConfig, reduce_model

__all__ = ["LayerStats", "collect_stats", "count_parameters", "load_reduced", "save_reduced", "save_stock", "hierarchical_cluster",
           "kmeans", "MergedExperts", "merge_experts", "ReduceConfig", "reduce_model"]
