set terminal pngcairo size 1000,640 noenhanced
set output 'bpb_vs_length.png'
set title 'validation BPB vs window length (error bars: std over seeds)'
set xlabel 'window length (bytes, log2)'
set ylabel 'bits per byte'
set key outside right top
set grid
set logscale x 2
set offsets graph 0.04, graph 0.04, graph 0.05, graph 0.05
$d0 << EOD
256 1.924569 0.005062
512 1.920978 0.008154
1024 1.976503 0.014048
2048 2.184026 0.022520
4096 2.701707 0.053961
EOD
$d1 << EOD
256 1.924569 0.005062
512 1.897624 0.006061
1024 1.887601 0.006306
2048 1.881472 0.005566
4096 1.865368 0.006190
EOD
$d2 << EOD
256 1.957534 0.033846
512 1.914884 0.038558
1024 1.896091 0.041033
2048 1.887795 0.041471
4096 1.872151 0.042296
EOD
$d3 << EOD
256 1.987650 0.010550
512 1.966354 0.011917
1024 1.960021 0.012509
2048 1.954667 0.012750
4096 1.936053 0.012077
EOD
$d4 << EOD
256 1.923287 0.003563
512 1.910223 0.005433
1024 1.949298 0.014520
2048 2.114511 0.044826
4096 2.667507 0.106128
EOD
$d5 << EOD
256 1.923287 0.003563
512 1.896595 0.004631
1024 1.886907 0.004613
2048 1.880683 0.004739
4096 1.863673 0.005630
EOD
$d6 << EOD
256 1.987593 0.004264
512 1.938686 0.004026
1024 1.918434 0.004152
2048 1.907800 0.003763
4096 1.890804 0.004603
EOD
$d7 << EOD
256 1.894992 0.040844
512 1.865210 0.046844
1024 1.854636 0.049665
2048 1.849077 0.049828
4096 1.832243 0.048764
EOD
$d8 << EOD
256 1.894992 0.040844
512 1.865168 0.046185
1024 1.853622 0.049686
2048 1.847319 0.050477
4096 1.830109 0.049804
EOD
plot $d0 using 1:2:3 with yerrorlines lw 2 dt 1 lc rgb '#000000' pt 1 title 'rope', \
     $d1 using 1:2:3 with yerrorlines lw 2 dt 2 lc rgb '#000000' pt 1 title 'rope +BCA', \
     $d2 using 1:2:3 with yerrorlines lw 2 dt 1 lc rgb '#e41a1c' pt 2 title 'alibi', \
     $d3 using 1:2:3 with yerrorlines lw 2 dt 1 lc rgb '#377eb8' pt 3 title 'fox', \
     $d4 using 1:2:3 with yerrorlines lw 2 dt 1 lc rgb '#4daf4a' pt 4 title 'grape-m', \
     $d5 using 1:2:3 with yerrorlines lw 2 dt 2 lc rgb '#4daf4a' pt 4 title 'grape-m +BCA', \
     $d6 using 1:2:3 with yerrorlines lw 2 dt 1 lc rgb '#984ea3' pt 5 title 'grape-ap', \
     $d7 using 1:2:3 with yerrorlines lw 2 dt 1 lc rgb '#ff7f00' pt 6 title 'grape-m+grape-ap', \
     $d8 using 1:2:3 with yerrorlines lw 2 dt 2 lc rgb '#ff7f00' pt 6 title 'grape-m+grape-ap +BCA'
set output 'bpb_vs_length_zoom.png'
set title 'validation BPB vs window length, within 20% of the best (lines above leave the plot)'
set offsets 0, 0, 0, 0
set yrange [1.8118:2.1961]
replot
