"""HC-SMoE: retraining-free merging of sparse MoE experts by hierarchical clustering (ICML 2025).

    stats = collect_stats(model, calibration_batches)                 # calibration.py
    reduce_model(model, stats, ReduceConfig(num_experts=k))           # methods.py (clustering.py, merging.py)
    save_reduced(model, "out/")                                       # checkpoint.py: a Hugging Face checkpoint
    AutoModelForCausalLM.from_pretrained("out/", trust_remote_code=True)   # (or load_reduced("out/"))
"""
from .calibration import LayerStats, collect_stats
from .checkpoint import count_parameters, load_reduced, save_reduced
from .clustering import hierarchical_cluster, kmeans
from .merging import MergedExperts, merge_experts
from .methods import ReduceConfig, reduce_model

__all__ = ["LayerStats", "collect_stats", "count_parameters", "load_reduced", "save_reduced", "hierarchical_cluster",
           "kmeans", "MergedExperts", "merge_experts", "ReduceConfig", "reduce_model"]
