set terminal pngcairo size 1000,816 noenhanced
set output 'bpb_vs_length.png'
set title 'validation BPB vs window length (error bars: std over seeds)'
set xlabel 'window length (bytes, log2)'
set ylabel 'bits per byte'
set key outside below center maxcols 3 font ',10' samplen 3 height 1
set grid
set logscale x 2
set offsets graph 0.04, graph 0.04, graph 0.05, graph 0.05
$d0 << EOD
256 2.733511 0.086065
512 3.054216 0.059799
1024 3.552088 0.160646
2048 3.945906 0.302329
4096 4.195134 0.390708
EOD
$d1 << EOD
256 1.651419 0.017783
512 1.666366 0.033510
1024 1.735823 0.053428
2048 1.965665 0.131122
4096 2.749974 0.423980
EOD
$d2 << EOD
256 1.651419 0.017783
512 1.631814 0.017915
1024 1.622672 0.017936
2048 1.618557 0.018267
4096 1.603886 0.017027
EOD
$d3 << EOD
256 1.658079 0.016505
512 1.642921 0.016632
1024 1.646536 0.013333
2048 1.708993 0.019301
4096 1.897530 0.035720
EOD
$d4 << EOD
256 1.658079 0.016505
512 1.639180 0.016498
1024 1.630083 0.016373
2048 1.626169 0.016469
4096 1.612289 0.015776
EOD
$d5 << EOD
256 1.654054 0.015992
512 1.649456 0.021861
1024 1.691384 0.019038
2048 1.931203 0.089501
4096 2.875941 0.307159
EOD
$d6 << EOD
256 1.654054 0.015992
512 1.634713 0.016715
1024 1.625503 0.017142
2048 1.621372 0.017432
4096 1.607202 0.016093
EOD
$d7 << EOD
256 1.653041 0.021199
512 1.668913 0.032217
1024 1.736989 0.042935
2048 1.999476 0.050230
4096 2.997943 0.094319
EOD
$d8 << EOD
256 1.653041 0.021199
512 1.633053 0.022778
1024 1.623155 0.023072
2048 1.618683 0.023300
4096 1.603466 0.022990
EOD
$d9 << EOD
256 1.657402 0.020963
512 1.654667 0.023533
1024 1.710180 0.037979
2048 1.965698 0.097670
4096 2.841512 0.287623
EOD
$d10 << EOD
256 1.657402 0.020963
512 1.639398 0.020893
1024 1.630378 0.021145
2048 1.626798 0.021349
4096 1.613210 0.020658
EOD
$d11 << EOD
256 1.686592 0.011544
512 3.477185 0.068795
1024 4.649678 0.124151
2048 5.197003 0.192978
4096 5.518572 0.221085
EOD
$d12 << EOD
256 1.686592 0.011544
512 1.674717 0.008303
1024 1.665605 0.008854
2048 1.664269 0.008897
4096 1.649580 0.007938
EOD
$d13 << EOD
256 1.714150 0.008880
512 1.693922 0.007311
1024 1.684957 0.007920
2048 1.680890 0.008192
4096 1.665757 0.008046
EOD
$d14 << EOD
256 1.719617 0.007065
512 1.708382 0.006946
1024 1.703672 0.007260
2048 1.701733 0.007332
4096 1.688282 0.007536
EOD
$d15 << EOD
256 1.682820 0.013977
512 1.661065 0.012753
1024 1.651006 0.013757
2048 1.646587 0.013727
4096 1.631635 0.014144
EOD
$d16 << EOD
256 1.679909 0.018793
512 1.659469 0.017784
1024 1.650755 0.017878
2048 1.647700 0.019165
4096 1.632929 0.019237
EOD
$d17 << EOD
256 1.675861 0.015139
512 1.653921 0.014010
1024 1.644552 0.015201
2048 1.640199 0.015911
4096 1.625423 0.015755
EOD
$d18 << EOD
256 1.668115 0.012331
512 1.647466 0.013951
1024 1.637660 0.014893
2048 1.633196 0.015862
4096 1.617679 0.016203
EOD
$d19 << EOD
256 1.748918 0.015715
512 1.727074 0.014415
1024 1.718228 0.014587
2048 1.714183 0.014901
4096 1.697549 0.014254
EOD
$d20 << EOD
256 1.643655 0.001448
512 1.624779 0.001194
1024 1.614590 0.001238
2048 1.611028 0.001405
4096 1.597603 0.001733
EOD
$d21 << EOD
256 1.643655 0.001448
512 1.624885 0.001376
1024 1.614605 0.001623
2048 1.610845 0.001879
4096 1.597170 0.002390
EOD
$d22 << EOD
256 1.706044 0.021063
512 1.694697 0.021939
1024 1.689089 0.021931
2048 1.686740 0.021927
4096 1.673983 0.022439
EOD
$d23 << EOD
256 1.706044 0.021063
512 1.694697 0.021939
1024 1.689089 0.021931
2048 1.686740 0.021926
4096 1.673983 0.022439
EOD
$d24 << EOD
256 1.644676 0.008567
512 1.627597 0.008269
1024 1.619516 0.007436
2048 1.616174 0.006728
4096 1.602988 0.005805
EOD
$d25 << EOD
256 1.644676 0.008567
512 1.626914 0.009053
1024 1.618112 0.008989
2048 1.614161 0.008693
4096 1.600463 0.007967
EOD
$d26 << EOD
256 1.643555 0.009378
512 1.625166 0.009731
1024 1.616086 0.009952
2048 1.612454 0.010614
4096 1.598756 0.011178
EOD
$d27 << EOD
256 1.643555 0.009378
512 1.625152 0.009659
1024 1.616136 0.009891
2048 1.612459 0.010401
4096 1.598600 0.011000
EOD
$d28 << EOD
256 1.653766 0.015630
512 1.684299 0.053241
1024 1.743129 0.051014
2048 2.003486 0.124071
4096 2.827348 0.335251
EOD
$d29 << EOD
256 1.653766 0.015630
512 1.634374 0.015492
1024 1.625707 0.015865
2048 1.621484 0.015754
4096 1.606745 0.014283
EOD
$d30 << EOD
256 1.652585 0.016405
512 1.647516 0.024666
1024 1.692056 0.031810
2048 1.892133 0.056011
4096 2.710994 0.310586
EOD
$d31 << EOD
256 1.652585 0.016405
512 1.633293 0.017558
1024 1.623994 0.018666
2048 1.619988 0.018885
4096 1.605134 0.019163
EOD
plot $d0 using 1:2:3 with yerrorlines lw 2 dt 1 lc rgb '#000000' pt 1 title 'nope', \
     $d1 using 1:2:3 with yerrorlines lw 2 dt 1 lc rgb '#e41a1c' pt 2 title 'rope', \
     $d2 using 1:2:3 with yerrorlines lw 2 dt 2 lc rgb '#e41a1c' pt 2 title 'rope +BCA', \
     $d3 using 1:2:3 with yerrorlines lw 2 dt 1 lc rgb '#377eb8' pt 3 title 'xpos', \
     $d4 using 1:2:3 with yerrorlines lw 2 dt 2 lc rgb '#377eb8' pt 3 title 'xpos +BCA', \
     $d5 using 1:2:3 with yerrorlines lw 2 dt 1 lc rgb '#4daf4a' pt 4 title 'grape-m', \
     $d6 using 1:2:3 with yerrorlines lw 2 dt 2 lc rgb '#4daf4a' pt 4 title 'grape-m +BCA', \
     $d7 using 1:2:3 with yerrorlines lw 2 dt 1 lc rgb '#984ea3' pt 5 title 'grape-m-ctx', \
     $d8 using 1:2:3 with yerrorlines lw 2 dt 2 lc rgb '#984ea3' pt 5 title 'grape-m-ctx +BCA', \
     $d9 using 1:2:3 with yerrorlines lw 2 dt 1 lc rgb '#ff7f00' pt 6 title 'grape-m-basis', \
     $d10 using 1:2:3 with yerrorlines lw 2 dt 2 lc rgb '#ff7f00' pt 6 title 'grape-m-basis +BCA', \
     $d11 using 1:2:3 with yerrorlines lw 2 dt 1 lc rgb '#a65628' pt 7 title 'grape-m-nc', \
     $d12 using 1:2:3 with yerrorlines lw 2 dt 2 lc rgb '#a65628' pt 7 title 'grape-m-nc +BCA', \
     $d13 using 1:2:3 with yerrorlines lw 2 dt 1 lc rgb '#f781bf' pt 8 title 'alibi', \
     $d14 using 1:2:3 with yerrorlines lw 2 dt 1 lc rgb '#999999' pt 9 title 'fox', \
     $d15 using 1:2:3 with yerrorlines lw 2 dt 1 lc rgb '#1b9e77' pt 10 title 'grape-a', \
     $d16 using 1:2:3 with yerrorlines lw 2 dt 1 lc rgb '#d95f02' pt 11 title 'grape-a-k', \
     $d17 using 1:2:3 with yerrorlines lw 2 dt 1 lc rgb '#7570b3' pt 12 title 'grape-a-q', \
     $d18 using 1:2:3 with yerrorlines lw 2 dt 1 lc rgb '#e7298a' pt 13 title 'grape-a-qk', \
     $d19 using 1:2:3 with yerrorlines lw 2 dt 1 lc rgb '#66a61e' pt 1 title 'grape-ap', \
     $d20 using 1:2:3 with yerrorlines lw 2 dt 1 lc rgb '#e6ab02' pt 2 title 'grape-m+grape-ap', \
     $d21 using 1:2:3 with yerrorlines lw 2 dt 2 lc rgb '#e6ab02' pt 2 title 'grape-m+grape-ap +BCA', \
     $d22 using 1:2:3 with yerrorlines lw 2 dt 1 lc rgb '#17becf' pt 3 title 'rope+fox', \
     $d23 using 1:2:3 with yerrorlines lw 2 dt 2 lc rgb '#17becf' pt 3 title 'rope+fox +BCA', \
     $d24 using 1:2:3 with yerrorlines lw 2 dt 1 lc rgb '#000080' pt 4 title 'xpos+alibi', \
     $d25 using 1:2:3 with yerrorlines lw 2 dt 2 lc rgb '#000080' pt 4 title 'xpos+alibi +BCA', \
     $d26 using 1:2:3 with yerrorlines lw 2 dt 1 lc rgb '#808000' pt 5 title 'rope+grape-a-qk', \
     $d27 using 1:2:3 with yerrorlines lw 2 dt 2 lc rgb '#808000' pt 5 title 'rope+grape-a-qk +BCA', \
     $d28 using 1:2:3 with yerrorlines lw 2 dt 1 lc rgb '#800000' pt 6 title 'rope:qk_gain=pair', \
     $d29 using 1:2:3 with yerrorlines lw 2 dt 2 lc rgb '#800000' pt 6 title 'rope:qk_gain=pair +BCA', \
     $d30 using 1:2:3 with yerrorlines lw 2 dt 1 lc rgb '#6a3d9a' pt 7 title 'grape-m:qk_gain=pair', \
     $d31 using 1:2:3 with yerrorlines lw 2 dt 2 lc rgb '#6a3d9a' pt 7 title 'grape-m:qk_gain=pair +BCA'
set output 'bpb_vs_length_zoom.png'
set title 'validation BPB vs window length, within 20% of the best (lines above leave the plot)'
set offsets 0, 0, 0, 0
set yrange [1.5812:1.9166]
replot
