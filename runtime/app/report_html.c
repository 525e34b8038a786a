/*
 * report_html.c — the run report as one static HTML page (report.h has the model;
 * cli_report.c fills it; docs/observability.md, "Report", shows the page).
 *
 * DESIGN
 *   One file, nothing fetched: the styles and the one small script are inline, the
 *   pictures are inline SVG, no font is named but the system's. The essentials read
 *   without JavaScript: the facts of the run, the graph, the per-task table, the Gantt
 *   chart as drawn for the whole run, the failures with their log tails. The script
 *   only zooms and pans the Gantt chart: every element that moves with time carries
 *   its start and end (data-s, data-e: seconds from the run's first start), and the
 *   script places them again for the window shown, with the time axis redrawn. It
 *   makes SVG elements in the namespace of the SVG it finds, so the page names no
 *   URL at all.
 *
 *   The graph is laid out in columns (a binding one column right of its deepest
 *   upstream, report.h) with the bindings of a group framed together; a mapped
 *   binding is a stack of cards. The Gantt chart has a lane per worker for a small run
 *   and a band per binding (first start to last end, with its histogram of durations)
 *   for a large one, so the page's size depends on the number of bindings, not of
 *   instances.
 *
 *   Every text that comes from the run (names, parameters, errors, logs) is escaped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <flow.h> /* FLOW_VERSION */

#include "cli_names.h"
#include "report.h"

#define G_W 230 /* graph: a card's width and height, gaps */
#define G_H 62
#define G_GX 44
#define G_GY 34
#define T_LABEL 160 /* Gantt: lane labels, the timeline, the histogram column */
#define T_W 960
#define T_HIST 130
#define T_AXIS 26
#define T_LANE 16
#define T_ROW 30

static const char *const palette[] = {"#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2",
                                      "#edc948", "#9c755f", "#ff9da7", "#bab0ac", "#86bcb6"};
#define NPAL (sizeof palette / sizeof *palette)

static void esc(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
            case '&':
                fputs("&amp;", f);
                break;
            case '<':
                fputs("&lt;", f);
                break;
            case '>':
                fputs("&gt;", f);
                break;
            case '"':
                fputs("&quot;", f);
                break;
            case '\'':
                fputs("&#39;", f);
                break;
            default:
                putc(*s, f);
        }
    }
}

/* 1234567 -> "1,234,567" */
static const char *count(long n, char *buf, size_t len) {
    char d[32];
    int k = snprintf(d, sizeof d, "%ld", n < 0 ? -n : n), o = 0;
    if (n < 0 && (size_t)o + 1 < len) buf[o++] = '-';
    for (int i = 0; i < k && (size_t)o + 2 < len; i++) {
        if (i && (k - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = d[i];
    }
    buf[o] = 0;
    return buf;
}

static const char *dur(double s, char *buf, size_t len) {
    if (s < 0)
        snprintf(buf, len, "-");
    else if (s < 0.001)
        snprintf(buf, len, "%.0f µs", s * 1e6);
    else if (s < 1)
        snprintf(buf, len, "%.1f ms", s * 1e3);
    else if (s < 60)
        snprintf(buf, len, "%.2f s", s);
    else if (s < 3600)
        snprintf(buf, len, "%d min %02d s", (int)(s / 60), (int)fmod(s, 60));
    else
        snprintf(buf, len, "%d h %02d min", (int)(s / 3600), (int)fmod(s / 60, 60));
    return buf;
}

static const char *kib(int64_t kb, char *buf, size_t len) {
    if (kb < 1024)
        snprintf(buf, len, "%lld KiB", (long long)kb);
    else if (kb < 1024 * 1024)
        snprintf(buf, len, "%.1f MiB", kb / 1024.0);
    else
        snprintf(buf, len, "%.2f GiB", kb / 1048576.0);
    return buf;
}

static const char CSS[] =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d2330;"
    "background:#f6f7f9}\n"
    "header{background:#1d2330;color:#fff;padding:18px 28px}header h1{margin:0;font-size:22px}"
    "header p{margin:4px 0 0;color:#c9cfdb}\n"
    "main{padding:8px 28px 40px}section{background:#fff;border:1px solid #dde1e8;"
    "border-radius:6px;margin:16px 0;padding:12px 18px;overflow-x:auto}\n"
    "#run tbody{display:grid;grid-template-columns:auto 1fr auto 1fr}#run tr{display:contents}"
    "#run pre{margin:0}#tasks table{font-size:13px}\n"
    "h2{font-size:17px;margin:4px 0 10px}table{border-collapse:collapse}"
    "td,th{padding:3px 10px;border-bottom:1px solid #eceff3;text-align:left;vertical-align:top}"
    "th{font-weight:600;background:#f0f2f5}td.n,th.n{text-align:right;white-space:nowrap;"
    "font-variant-numeric:tabular-nums}\n"
    ".state-succeeded{color:#2d7d32}.state-failed{color:#c62828;font-weight:600}"
    ".state-interrupted,.state-running{color:#b26a00}\n"
    "pre{background:#f3f4f7;padding:8px 10px;border-radius:4px;overflow-x:auto;margin:4px 0;"
    "font:12px/1.4 ui-monospace,'DejaVu Sans Mono',monospace;white-space:pre-wrap}\n"
    ".fail{border-left:4px solid #c62828;padding:4px 12px;margin:10px 0}"
    ".note{color:#5b6474;font-size:13px}.up{color:#c62828}.down{color:#2d7d32}\n"
    "svg text{font:12px system-ui,sans-serif}svg .b{font-weight:600}svg .s{fill:#5b6474}"
    "svg .c{font-size:11px}"
    ".zoom button{margin-right:6px}\n"
    "svg .bar:hover,svg .band:hover{stroke:#1d2330;stroke-width:1}\n";

/* The script: zoom and pan of the Gantt chart (DESIGN). */
static const char JS[] =
    "(function(){\n"
    "var svg=document.getElementById('gantt');if(!svg)return;\n"
    "var X0=+svg.getAttribute('data-x0'),W=+svg.getAttribute('data-w'),"
    "T=+svg.getAttribute('data-t'),H=+svg.getAttribute('data-h');\n"
    "var els=svg.querySelectorAll('[data-s]'),axis=document.getElementById('axis');\n"
    "var v0=0,v1=T>0?T:1,NS=svg.namespaceURI;\n"
    "function mk(n,a){var e=document.createElementNS(NS,n);"
    "for(var k in a)e.setAttribute(k,a[k]);return e;}\n"
    "function label(t){var s=v1-v0;if(s<0.01)return (t*1000).toFixed(2)+' ms';"
    "if(s<2)return (t*1000).toFixed(0)+' ms';if(s<120)return t.toFixed(s<20?1:0)+' s';"
    "return (t/60).toFixed(1)+' min';}\n"
    "function draw(){var k=W/(v1-v0);\n"
    " for(var i=0;i<els.length;i++){var e=els[i],s=+e.getAttribute('data-s'),"
    "f=+e.getAttribute('data-e');var a=Math.max(s,v0),b=Math.min(f,v1);\n"
    "  if(b<a&&!(s===f&&s>=v0&&s<=v1)){e.setAttribute('display','none');continue;}"
    "e.removeAttribute('display');\n"
    "  e.setAttribute('x',(X0+(a-v0)*k).toFixed(2));"
    "e.setAttribute('width',Math.max((b-a)*k,1).toFixed(2));}\n"
    " while(axis.firstChild)axis.removeChild(axis.firstChild);\n"
    " var span=v1-v0,st=Math.pow(10,Math.floor(Math.log(span/8)/Math.LN10));\n"
    " if(span/st>40)st*=5;else if(span/st>16)st*=2;\n"
    " for(var t=Math.ceil(v0/st)*st;t<=v1;t+=st){var x=X0+(t-v0)*k;\n"
    "  axis.appendChild(mk('line',{x1:x,x2:x,y1:18,y2:H,stroke:'#e3e6eb'}));\n"
    "  var tx=mk('text',{x:x+2,y:14,'class':'s'});tx.textContent=label(t);"
    "axis.appendChild(tx);}}\n"
    "function zoom(f,at){var c=at===undefined?(v0+v1)/2:at,s=(v1-v0)*f;"
    "if(s>T)s=T;if(s<T*1e-6)s=T*1e-6;v0=c-(c-v0)*s/(v1-v0);v1=v0+s;"
    "if(v0<0){v1-=v0;v0=0;}if(v1>T){v0-=v1-T;v1=T;}if(v0<0)v0=0;draw();}\n"
    "function tAt(ev){var r=svg.getBoundingClientRect(),"
    "vb=svg.viewBox.baseVal,x=(ev.clientX-r.left)*vb.width/r.width;"
    "return v0+(x-X0)*(v1-v0)/W;}\n"
    "document.getElementById('zin').onclick=function(){zoom(0.5);};\n"
    "document.getElementById('zout').onclick=function(){zoom(2);};\n"
    "document.getElementById('zall').onclick=function(){v0=0;v1=T;draw();};\n"
    "svg.addEventListener('wheel',function(ev){ev.preventDefault();"
    "zoom(ev.deltaY<0?0.8:1.25,tAt(ev));},{passive:false});\n"
    "var drag=null;svg.addEventListener('mousedown',function(ev){drag={t:tAt(ev),v0:v0,v1:v1};});\n"
    "window.addEventListener('mouseup',function(){drag=null;});\n"
    "svg.addEventListener('mousemove',function(ev){if(!drag)return;var d=drag.t-tAt(ev);"
    "var s=v1-v0;v0=Math.min(Math.max(v0+d,0),T-s);v1=v0+s;draw();});\n"
    "document.getElementById('zhint').textContent='Wheel or buttons to zoom, drag to pan.';\n"
    "})();\n";

static void fact(FILE *f, const char *k, const char *v) {
    fprintf(f, "<tr><th>%s</th><td>", k);
    esc(f, v ? v : "-");
    fputs("</td></tr>\n", f);
}

static void header(FILE *f, const rep_run *R) {
    const state_run *r = &R->r;
    char a[64], b[64], d[64], buf[128];
    fprintf(f, "<header><h1>Run %lld: ", (long long)r->id);
    esc(f, r->flow);
    fputs(" <span class=\"state-", f);
    esc(f, r->state); /* from state.db: escaped like every text of the run */
    fputs("\">", f);
    esc(f, r->state);
    fputs("</span></h1><p>", f);
    cli_iso_time(r->started, a, sizeof a);
    cli_iso_time(r->ended, b, sizeof b);
    fprintf(f, "%s instances &middot; started %s &middot; %s</p></header>\n<main>\n",
            count(R->n, buf, sizeof buf), a,
            r->ended > 0 ? dur(r->ended - r->started, d, sizeof d) : "not ended");
    fputs("<section id=\"run\"><h2>The run</h2><table>\n", f);
    fact(f, "flow", r->flow);
    fact(f, "environment", r->env);
    fact(f, "state", r->state);
    snprintf(buf, sizeof buf, "%d", r->exit_code);
    fact(f, "exit code", r->exit_code >= 0 ? buf : NULL);
    fact(f, "started", a);
    fact(f, "ended", r->ended > 0 ? b : NULL);
    fact(f, "wall time", r->ended > 0 ? dur(r->ended - r->started, d, sizeof d) : NULL);
    fact(f, "logical date", r->logical ? r->logical : "- (not a scheduled run)");
    fputs("<tr><th>parameters</th><td><pre>", f);
    esc(f, r->params_json ? r->params_json : "{}");
    fputs("</pre></td></tr>\n", f);
    fact(f, "options", r->options);
    fact(f, "plan", r->plan_path);
    char hex[65];
    hash_hex(&r->plan_hash, hex);
    fact(f, "plan hash (SHA-256)", hex);
    if (!R->plan_ok || R->plan_rebuilt) {
        char why[400];
        if (R->plan_ok)
            snprintf(why, sizeof why,
                     "rebuilt since the run: the graph's edges and source "
                     "positions are read from the plan as it is now");
        else
            snprintf(why, sizeof why,
                     "it cannot be read (%.200s): the graph has no arrows and "
                     "the failures no source positions",
                     R->plan_err);
        fact(f, "plan note", why);
    }
    snprintf(buf, sizeof buf,
             "%s (flowrun %s made this report; state.db does not record the "
             "version that ran it)",
             FLOW_VERSION, FLOW_VERSION);
    fact(f, "flowrun version", buf);
    snprintf(buf, sizeof buf, "pid %d on ", r->pid);
    fprintf(f, "<tr><th>owner</th><td>");
    esc(f, buf);
    esc(f, r->host ? r->host : "(host not recorded)");
    fputs("</td></tr>\n", f);
    if (r->result_json) {
        fputs("<tr><th>result</th><td><pre>", f);
        esc(f, r->result_json);
        fputs("</pre></td></tr>\n", f);
    }
    if (r->error) {
        fputs("<tr><th>error</th><td><pre>", f);
        esc(f, r->error);
        fputs("</pre></td></tr>\n", f);
    }
    fputs("</table></section>\n", f);
}

static double card_x(const rep_bind *b) {
    return 20 + b->depth * (G_W + G_GX);
}
static double card_y(const rep_bind *b) {
    return 34 + b->row * (G_H + G_GY);
}

/* The last '/' of a binding's name: its group is what comes before. */
static size_t group_len(const char *name) {
    const char *s = strrchr(name, '/');
    return s ? (size_t)(s - name) : 0;
}

static void graph(FILE *f, const rep_run *R) {
    int cols = 0, rows = 0;
    for (size_t i = 0; i < R->nb; i++) {
        if (R->b[i].depth + 1 > cols) cols = R->b[i].depth + 1;
        if (R->b[i].row + 1 > rows) rows = R->b[i].row + 1;
    }
    int w = 40 + cols * (G_W + G_GX), h = 50 + rows * (G_H + G_GY);
    fputs("<section id=\"graph\"><h2>The flow</h2>\n", f);
    fprintf(f,
            "<svg width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
            "aria-label=\"the graph of the flow\">\n"
            "<defs><marker id=\"arr\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" "
            "markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0L10,5L0,10z\" "
            "fill=\"#8a93a3\"/></marker></defs>\n",
            w, h, w, h);
    /* groups: a frame around the bindings that share one */
    for (size_t i = 0; i < R->nb; i++) {
        size_t gl = group_len(R->b[i].name);
        int first = 1;
        for (size_t k = 0; k < i && first; k++)
            if (group_len(R->b[k].name) == gl && gl && !strncmp(R->b[k].name, R->b[i].name, gl))
                first = 0;
        if (!gl || !first) continue;
        double x0 = 1e9, y0 = 1e9, x1 = 0, y1 = 0;
        for (size_t k = i; k < R->nb; k++) {
            const rep_bind *b = &R->b[k];
            if (group_len(b->name) != gl || strncmp(b->name, R->b[i].name, gl)) continue;
            x0 = fmin(x0, card_x(b)), y0 = fmin(y0, card_y(b));
            x1 = fmax(x1, card_x(b) + G_W), y1 = fmax(y1, card_y(b) + G_H);
        }
        fprintf(f,
                "<g class=\"group\"><rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" "
                "rx=\"8\" fill=\"#f3f6fb\" stroke=\"#9aa7bd\" stroke-dasharray=\"5 3\"/>"
                "<text x=\"%.0f\" y=\"%.0f\" class=\"s\">group ",
                x0 - 12, y0 - 24, x1 - x0 + 24, y1 - y0 + 34, x0 - 6, y0 - 12);
        for (size_t c = 0; c < gl; c++) {
            char one[2] = {R->b[i].name[c], 0};
            esc(f, one);
        }
        fputs("</text></g>\n", f);
    }
    for (size_t i = 0; i < R->nb; i++) { /* edges */
        const rep_bind *b = &R->b[i];
        for (int k = 0; k < b->nup; k++) {
            const rep_bind *u = &R->b[b->up[k]];
            double x1 = card_x(u) + G_W, y1 = card_y(u) + G_H / 2.0;
            double x2 = card_x(b) - 2, y2 = card_y(b) + G_H / 2.0;
            fprintf(f,
                    "<path d=\"M%.0f,%.0fC%.0f,%.0f %.0f,%.0f %.0f,%.0f\" fill=\"none\" "
                    "stroke=\"#8a93a3\" stroke-width=\"1.5\" marker-end=\"url(#arr)\"/>\n",
                    x1, y1, (x1 + x2) / 2, y1, (x1 + x2) / 2, y2, x2, y2);
        }
    }
    for (size_t i = 0; i < R->nb; i++) { /* cards */
        const rep_bind *b = &R->b[i];
        double x = card_x(b), y = card_y(b);
        const char *stroke = b->failed ? "#c62828" : "#7d8798";
        const char *fill = b->failed ? "#fdecea" : "#ffffff";
        fputs("<g class=\"task\">", f);
        for (int s = b->mapped ? 2 : 0; s > 0; s--)
            fprintf(f,
                    "<rect x=\"%.0f\" y=\"%.0f\" width=\"%d\" height=\"%d\" rx=\"6\" "
                    "fill=\"%s\" stroke=\"%s\"/>",
                    x + 4 * s, y - 4 * s, G_W, G_H, fill, stroke);
        fprintf(f,
                "<rect x=\"%.0f\" y=\"%.0f\" width=\"%d\" height=\"%d\" rx=\"6\" fill=\"%s\" "
                "stroke=\"%s\" stroke-width=\"1.5\"/>",
                x, y, G_W, G_H, fill, stroke);
        fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"6\" height=\"%d\" fill=\"%s\"/>", x, y + 1,
                G_H - 2, palette[i % NPAL]);
        fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" class=\"b\">", x + 14, y + 18);
        esc(f, b->name);
        char n1[32], n2[32], n3[32], n4[32];
        fprintf(f, "%s</text><text x=\"%.0f\" y=\"%.0f\" class=\"s\">task ",
                b->mapped ? " [ ]" : "", x + 14, y + 35);
        esc(f, b->task);
        fprintf(f, " &middot; %s</text>", count(b->n, n1, sizeof n1));
        fprintf(f,
                "<text x=\"%.0f\" y=\"%.0f\" class=\"c\">%s done &middot; %s cached &middot; "
                "<tspan%s>%s failed</tspan> &middot; %s skipped</text>",
                x + 14, y + 52, count(b->done, n1, sizeof n1), count(b->cached, n2, sizeof n2),
                b->failed ? " fill=\"#c62828\" font-weight=\"600\"" : "",
                count(b->failed, n3, sizeof n3), count(b->skipped + b->other, n4, sizeof n4));
        fputs("<title>", f);
        esc(f, b->name);
        fputs("</title></g>\n", f);
    }
    fputs("</svg>\n<p class=\"note\">Each card is a binding, named as its instances are "
          "(<code>flowrun show</code>); a stack is a mapped task; arrows go from producer to "
          "consumer; a dashed frame is a group. Skipped counts the instances that did not run "
          "because a producer failed (or the run ended first).</p>",
          f);
    if (!R->plan_ok) fputs("<p class=\"note\">No arrows: the run's plan cannot be read.</p>", f);
    fputs("</section>\n", f);
}

static void hist_svg(FILE *f, const long *hist, double x, double y, double w, double h) {
    long mx = 1;
    for (int k = 0; k < REP_HIST; k++)
        if (hist[k] > mx) mx = hist[k];
    double bw = w / REP_HIST;
    static const char *const names[REP_HIST] = {"< 1 ms",    "1-3 ms",    "3-10 ms",  "10-30 ms",
                                                "30-100 ms", "0.1-0.3 s", "0.3-1 s",  "1-3 s",
                                                "3-10 s",    "10-30 s",   "30-100 s", ">= 100 s"};
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#f3f4f7\"/>", x,
            y, w, h);
    for (int k = 0; k < REP_HIST; k++) {
        double bh = hist[k] ? fmax(1, h * (double)hist[k] / (double)mx) : 0;
        fprintf(f,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#4e79a7\">"
                "<title>%s: %ld</title></rect>",
                x + k * bw + 0.5, y + h - bh, bw - 1, bh, names[k], hist[k]);
    }
}

static void tasks(FILE *f, const rep_run *R) {
    fputs("<section id=\"tasks\"><h2>Per task</h2><table>\n<tr><th>binding</th><th>task</th>"
          "<th class=\"n\">instances</th><th class=\"n\">done</th><th class=\"n\">cached</th>"
          "<th class=\"n\">failed</th><th class=\"n\">skipped</th><th class=\"n\">cache hits</th>"
          "<th class=\"n\">p50</th><th class=\"n\">p95</th><th class=\"n\">max</th>"
          "<th class=\"n\">total</th><th class=\"n\">peak RSS</th><th class=\"n\">task CPU</th>"
          "<th class=\"n\">retries</th>"
          "<th title=\"&lt;1 ms, 1-3 ms, 3-10 ms ... &ge;100 "
          "s\">durations</th><th>source</th></tr>\n",
          f);
    int unmeasured = 0;
    for (size_t i = 0; i < R->nb; i++) {
        const rep_bind *b = &R->b[i];
        char c[6][32], d[4][32], rss[32], rate[32], cpu[48];
        long looked = b->cached + b->done + b->failed;
        if (looked)
            snprintf(rate, sizeof rate, "%.0f %%", 100.0 * (double)b->cached / (double)looked);
        else
            snprintf(rate, sizeof rate, "-");
        if (!b->ndur)
            snprintf(rss, sizeof rss, "-");
        else if (R->inline_ex && !b->sh)
            snprintf(rss, sizeof rss, "n/a *"), unmeasured = 1;
        else if (b->rss_kb)
            kib(b->rss_kb, rss, sizeof rss);
        else
            snprintf(rss, sizeof rss, "not recorded");
        if (!b->cpu || !b->cpu_ran)
            snprintf(cpu, sizeof cpu, "-");
        else if (!b->cpu_measured)
            snprintf(cpu, sizeof cpu, "not measured");
        else /* "~": estimated from a sample of the instances (the note says how) */
            snprintf(cpu, sizeof cpu, "%s%s", b->cpu_measured < b->cpu_ran ? "~" : "",
                     dur(b->cpu_s, d[0], 32));
        fputs("<tr><td>", f);
        esc(f, b->name);
        fputs("</td><td>", f);
        esc(f, b->task);
        fprintf(f,
                "</td><td class=\"n\">%s</td><td class=\"n\">%s</td><td class=\"n\">%s</td>"
                "<td class=\"n%s\">%s</td><td class=\"n\">%s</td><td class=\"n\">%s</td>",
                count(b->n, c[0], 32), count(b->done, c[1], 32), count(b->cached, c[2], 32),
                b->failed ? " up" : "", count(b->failed, c[3], 32),
                count(b->skipped + b->other, c[4], 32), rate);
        int none = !b->ndur;
        fprintf(f,
                "<td class=\"n\">%s</td><td class=\"n\">%s</td><td class=\"n\">%s</td>"
                "<td class=\"n\">%s</td><td class=\"n\">%s</td><td class=\"n\">%s</td>"
                "<td class=\"n\">%s</td><td>",
                dur(none ? -1 : b->p50, d[0], 32), dur(none ? -1 : b->p95, d[1], 32),
                dur(none ? -1 : b->max, d[2], 32), dur(none ? -1 : b->total, d[3], 32), rss, cpu,
                count(b->retries, c[5], 32));
        if (b->ndur) {
            fputs("<svg width=\"132\" height=\"22\">", f);
            hist_svg(f, b->hist, 0, 0, 132, 22);
            fputs("</svg>", f);
        }
        fputs("</td><td>", f);
        esc(f, b->src ? b->src : "-");
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n<p class=\"note\">Durations are of the instances that ran (an instance "
          "served from the cache takes none); cache hits are the served share of the instances "
          "that were looked up or ran; retries are the attempts beyond the first. Peak RSS is "
          "the largest the executor measured for the task's instances: under the process "
          "executor and remote jobs, the worker process's peak when the instance ended (a "
          "worker's earlier instances count in it); for <code>sh</code> commands, under every "
          "executor, the command's own (wait4). Task CPU is user + system time of the task's "
          "instances that ran, over all its bindings: for <code>sh</code> commands the "
          "command's own (wait4); for C tasks, a sample: under the inline executor the runner "
          "thread's CPU clock around one run of jobs in 16, the first run of each task and "
          "every run of 1 ms or more, shared among the run's jobs by wall time; under the "
          "process executor the worker's CPU clock around one job in 16, each task's first "
          "job on the worker and every job of a task whose jobs take 2 ms or more; scaled to all the task's instances by wall time (\"~\": estimated from that "
          "sample). Remote jobs' CPU is not measured.</p>",
          f);
    if (unmeasured)
        fputs("<p class=\"note\">* This run used the inline executor: C tasks ran on flowrun's "
              "own threads, so the only peak RSS there is is flowrun's (it is recorded, but it "
              "is not the task's): the task CPU column is the figure per task there. Run with "
              "<code>--executor process</code> for a peak RSS per task.</p>",
              f);
    fputs("</section>\n", f);
}

static void axis_static(FILE *f, double T, int h) {
    double st = pow(10, floor(log10(T / 8)));
    if (T / st > 40)
        st *= 5;
    else if (T / st > 16)
        st *= 2;
    for (double t = 0; t <= T + st * 1e-9; t += st) {
        double x = T_LABEL + t / T * T_W;
        char d[32];
        fprintf(f,
                "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"18\" y2=\"%d\" stroke=\"#e3e6eb\"/>"
                "<text x=\"%.1f\" y=\"14\" class=\"s\">%s</text>",
                x, x, h, x + 2, dur(t, d, sizeof d));
    }
}

static void gantt(FILE *f, const rep_run *R) {
    fputs("<section id=\"gantt-section\"><h2>Gantt chart</h2>\n", f);
    if (!R->ran) {
        fputs("<p>No instance ran in this run (each was served from the cache, or none "
              "started).</p></section>\n",
              f);
        return;
    }
    double T = R->t1 - R->t0;
    if (T <= 0) T = 1e-6;
    int rows = 0;
    if (R->aggregated)
        for (size_t i = 0; i < R->nb; i++)
            rows += R->b[i].ndur > 0;
    int lane_h = R->aggregated ? T_ROW : T_LANE;
    int n = R->aggregated ? rows : R->nlanes;
    int h = T_AXIS + n * lane_h + 8;
    int w = T_LABEL + T_W + (R->aggregated ? T_HIST + 20 : 40);
    char buf[64];
    if (R->aggregated)
        fprintf(f,
                "<p class=\"note\">%s instances ran: too many to draw one by one (more than "
                "%d), so each binding is one band from its first start to its last end, with "
                "the histogram of its durations on the right (&lt;1 ms &hellip; &ge;100 s).</p>\n",
                count(R->ran, buf, sizeof buf), REP_BARS_MAX);
    else if (R->inline_ex)
        fputs("<p class=\"note\">Lanes: the inline executor runs instances on flowrun's threads, "
              "which the history does not record; each lane is one of the slots the instances "
              "really overlapped in (as many lanes as ran at once).</p>\n",
              f);
    else
        fputs("<p class=\"note\">Lanes: one per worker process (its pid; a remote job's worker "
              "is a process too).</p>\n",
              f);
    fputs("<p class=\"zoom\"><button id=\"zin\" type=\"button\">zoom in</button>"
          "<button id=\"zout\" type=\"button\">zoom out</button>"
          "<button id=\"zall\" type=\"button\">whole run</button><span id=\"zhint\" "
          "class=\"note\"></span></p>\n",
          f);
    fprintf(f,
            "<svg id=\"gantt\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" data-x0=\"%d\" "
            "data-w=\"%d\" data-t=\"%.6f\" data-h=\"%d\" role=\"img\" "
            "aria-label=\"Gantt chart of the run\">\n<defs><clipPath id=\"tl\"><rect x=\"%d\" "
            "y=\"0\" width=\"%d\" height=\"%d\"/></clipPath></defs>\n<g id=\"axis\">",
            w, h, w, h, T_LABEL, T_W, T, h, T_LABEL, T_W, h);
    axis_static(f, T, h);
    fputs("</g>\n<g clip-path=\"url(#tl)\">\n", f);
    if (R->aggregated) {
        int row = 0;
        for (size_t i = 0; i < R->nb; i++) {
            const rep_bind *b = &R->b[i];
            if (!b->ndur) continue;
            double s = b->first - R->t0, e = b->last - R->t0, y = T_AXIS + row * lane_h;
            char d1[32], d2[32];
            fprintf(f,
                    "<rect class=\"band\" x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%d\" "
                    "fill=\"%s\" fill-opacity=\"0.75\" data-s=\"%.6f\" data-e=\"%.6f\"><title>",
                    T_LABEL + s / T * T_W, y + 3, fmax((e - s) / T * T_W, 1), lane_h - 6,
                    palette[i % NPAL], s, e);
            esc(f, b->name);
            fprintf(f, ": %s ran from %s to %s; p50 %s</title></rect>\n",
                    count((long)b->ndur, buf, sizeof buf), dur(s, d1, sizeof d1),
                    dur(e, d2, sizeof d2), dur(b->p50, d2, sizeof d2));
            row++;
        }
    } else {
        for (size_t i = 0; i < R->nbars; i++) {
            const rep_bar *x = &R->bars[i];
            double s = x->s - R->t0, e = x->e - R->t0;
            char d[32];
            fprintf(f,
                    "<rect class=\"bar\" x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"%d\" "
                    "fill=\"%s\"%s data-s=\"%.6f\" data-e=\"%.6f\"><title>",
                    T_LABEL + s / T * T_W, T_AXIS + x->lane * lane_h + 2,
                    fmax((e - s) / T * T_W, 1), lane_h - 4,
                    x->failed ? "#c62828" : palette[x->bind % NPAL],
                    x->failed ? " stroke=\"#5a0000\"" : "", s, e);
            esc(f, x->name);
            fputs(" (", f);
            esc(f, R->b[x->bind].task);
            fprintf(f, "): %s%s</title></rect>\n", dur(e - s, d, sizeof d),
                    x->failed ? ", failed" : "");
        }
    }
    fputs("</g>\n", f);
    /* labels (and, aggregated, the histograms) do not move with time */
    int row = 0;
    for (int k = 0; k < n; k++) {
        double y = T_AXIS + k * lane_h + lane_h / 2.0 + 4;
        fprintf(f, "<text x=\"4\" y=\"%.1f\">", y);
        if (R->aggregated) {
            while (row < (int)R->nb && !R->b[row].ndur)
                row++;
            const rep_bind *b = &R->b[row];
            esc(f, b->name);
            fprintf(f, " (%s)</text>", count((long)b->ndur, buf, sizeof buf));
            hist_svg(f, b->hist, T_LABEL + T_W + 12, T_AXIS + k * lane_h + 3, T_HIST, lane_h - 6);
            row++;
        } else if (R->inline_ex) {
            fprintf(f, "lane %d</text>", k + 1);
        } else {
            int pid = 0;
            for (size_t i = 0; i < R->nbars && !pid; i++)
                if (R->bars[i].lane == k) pid = R->bars[i].pid;
            fprintf(f, "worker pid %d</text>", pid);
        }
        fputc('\n', f);
    }
    fputs("</svg>\n<p>", f);
    for (size_t i = 0; i < R->nb; i++) {
        if (!R->b[i].ndur) continue;
        fprintf(f,
                "<span style=\"display:inline-block;width:10px;height:10px;background:%s\">"
                "</span> ",
                palette[i % NPAL]);
        esc(f, R->b[i].name);
        fputs(" &nbsp; ", f);
    }
    fputs("<span style=\"display:inline-block;width:10px;height:10px;background:#c62828\">"
          "</span> failed</p>\n</section>\n",
          f);
}

static void failures(FILE *f, const rep_run *R) {
    char buf[32];
    fprintf(f, "<section id=\"failures\"><h2>Failures (%s)</h2>\n",
            count(R->fails_total, buf, sizeof buf));
    if (!R->fails_total) fputs("<p>No instance failed.</p>\n", f);
    for (size_t i = 0; i < R->nfails; i++) {
        const rep_fail *x = &R->fails[i];
        fputs("<div class=\"fail\"><p><b>", f);
        esc(f, x->name);
        fputs("</b> (task ", f);
        esc(f, x->task);
        fputs(") at ", f);
        esc(f, x->src ? x->src : "(source position unknown: no plan)");
        fprintf(f, ", %d attempt%s", x->attempts, x->attempts == 1 ? "" : "s");
        if (x->exit_status >= 0) fprintf(f, ", exit status %d", x->exit_status);
        if (x->term_signal) fprintf(f, ", signal %d", x->term_signal);
        fputs("</p><pre class=\"error\">", f);
        esc(f, x->error ? x->error : "(no error recorded)");
        fputs("</pre>", f);
        if (x->tail) {
            fputs("<p class=\"note\">The end of its log (", f);
            esc(f, x->log);
            fputs("):</p><pre class=\"log\">", f);
            esc(f, x->tail);
            fputs("</pre>", f);
        } else if (i < REP_TAILS_MAX) {
            fputs("<p class=\"note\">It wrote no log.</p>", f);
        }
        fputs("</div>\n", f);
    }
    if (R->fails_total > (long)R->nfails)
        fprintf(f, "<p>&hellip; and %s more (<code>flowrun show %lld</code> lists them).</p>\n",
                count(R->fails_total - (long)R->nfails, buf, sizeof buf), (long long)R->r.id);
    fputs("</section>\n", f);
}

static const rep_bind *find(const rep_run *C, const char *name) {
    for (size_t i = 0; i < C->nb; i++)
        if (!strcmp(C->b[i].name, name)) return &C->b[i];
    return NULL;
}

/* "12 → 15 (+3)", the change marked */
static void change_n(FILE *f, long was, long now) {
    char a[32], b[32], d[32];
    fprintf(f, "<td class=\"n\">%s &rarr; %s", count(was, a, sizeof a), count(now, b, sizeof b));
    if (now != was)
        fprintf(f, " <span class=\"%s\">(%s%s)</span>", now > was ? "up" : "down",
                now > was ? "+" : "", count(now - was, d, sizeof d));
    fputs("</td>", f);
}

static void change_t(FILE *f, double was, double now, int have_was, int have_now) {
    char a[32], b[32];
    fprintf(f, "<td class=\"n\">%s &rarr; %s", have_was ? dur(was, a, sizeof a) : "-",
            have_now ? dur(now, b, sizeof b) : "-");
    if (have_was && have_now && was > 0 && fabs(now - was) / was >= 0.05)
        fprintf(f, " <span class=\"%s\">(%+.0f %%)</span>", now > was ? "up" : "down",
                100 * (now - was) / was);
    fputs("</td>", f);
}

static void compare(FILE *f, const rep_run *R, const rep_run *C) {
    fprintf(f,
            "<section id=\"compare\"><h2>Compared with run %lld</h2>\n<p>Each figure reads "
            "<i>run %lld &rarr; run %lld</i>. ",
            (long long)C->r.id, (long long)C->r.id, (long long)R->r.id);
    char a[32], b[32];
    fprintf(f, "Wall time %s &rarr; %s; ",
            C->r.ended > 0 ? dur(C->r.ended - C->r.started, a, sizeof a) : "-",
            R->r.ended > 0 ? dur(R->r.ended - R->r.started, b, sizeof b) : "-");
    fprintf(f, "instances %s &rarr; %s.", count(C->n, a, sizeof a), count(R->n, b, sizeof b));
    if (strcmp(C->r.flow, R->r.flow)) {
        fputs(" Not the same flow: ", f);
        esc(f, C->r.flow);
        fputs(" and ", f);
        esc(f, R->r.flow);
        fputs(".", f);
    }
    fputs("</p>\n<table><tr><th>binding</th><th>task</th><th class=\"n\">instances</th>"
          "<th class=\"n\">ran</th><th class=\"n\">cached</th><th class=\"n\">failed</th>"
          "<th class=\"n\">time (sum)</th><th class=\"n\">p50</th><th class=\"n\">max</th>"
          "<th>change</th></tr>\n",
          f);
    for (int pass = 0; pass < 2; pass++) { /* R's bindings, then those only C has */
        const rep_run *X = pass ? C : R, *Y = pass ? R : C;
        for (size_t i = 0; i < X->nb; i++) {
            const rep_bind *x = &X->b[i], *y = find(Y, x->name);
            if (pass && y) continue;
            const rep_bind *now = pass ? NULL : x, *was = pass ? x : y;
            static const rep_bind none;
            const rep_bind *n = now ? now : &none, *w = was ? was : &none;
            fputs("<tr><td>", f);
            esc(f, x->name);
            fputs("</td><td>", f);
            esc(f, x->task);
            fputs("</td>", f);
            change_n(f, w->n, n->n);
            change_n(f, w->done + w->failed, n->done + n->failed);
            change_n(f, w->cached, n->cached);
            change_n(f, w->failed, n->failed);
            change_t(f, w->total, n->total, was && w->ndur, now && n->ndur);
            change_t(f, w->p50, n->p50, was && w->ndur, now && n->ndur);
            change_t(f, w->max, n->max, was && w->ndur, now && n->ndur);
            const char *what = !was   ? "new in this run"
                               : !now ? "not in this run"
                               : (w->n != n->n || w->failed != n->failed ||
                                  w->cached != n->cached || w->done != n->done)
                                   ? "counts changed"
                                   : "same counts";
            fprintf(f, "<td>%s</td></tr>\n", what);
        }
    }
    fputs("</table></section>\n", f);
}

int rep_write_html(FILE *f, const rep_run *R, const rep_run *C) {
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n"
          "<meta name=\"generator\" content=\"flowrun " FLOW_VERSION "\">\n<title>",
          f);
    fprintf(f, "Run %lld: ", (long long)R->r.id);
    esc(f, R->r.flow);
    fputs(" (flowrun report)</title>\n<style>\n", f);
    fputs(CSS, f);
    fputs("</style></head><body>\n", f);
    header(f, R);
    if (R->fails_total) failures(f, R); /* what went wrong first, when something did */
    graph(f, R);
    tasks(f, R);
    gantt(f, R);
    if (!R->fails_total) failures(f, R);
    if (C) compare(f, R, C);
    fputs("</main>\n<script>\n", f);
    fputs(JS, f);
    fputs("</script>\n</body></html>\n", f);
    return ferror(f) ? -1 : 0;
}
