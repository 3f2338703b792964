"""Report phase: the numbers a reader compares, from every probe's scores.

Reads: results/probe/<config>/<task>/scores.json, results/probe_layers/, the members'
embeddings (t-SNE), reports/paper/tables.csv (the published values).
Writes: reports/metrics.json, reports/metrics_ci.json, reports/tables/, reports/figures/,
reports/plots/scores.csv and reports/report.html.
Rules (rules/report.smk): metrics, table, figure_scores, figure_ablations, figure_tsne,
figure_layers, report_html, score_plot.

- metrics: metrics.json, the `dvc plots` score file, the paper's units.
- tables: the paper's Tables 2-6 as a table model (ranks, intervals, paper values);
  formats: that model as Markdown, LaTeX and CSV, and the table files written.
- stats, intervals: bootstrap intervals and paired differences.
- figures, figures_common, figures_embeddings: the figures (matplotlib, imported in figure jobs only).
- html: reports/report.html; compare: two commits' metrics side by side (`python -m hearflow.report.compare`).
"""
