set terminal pngcairo size 1000,640 noenhanced
set output 'effective_context.png'
set title 'loss by context: mean over the octave (c/2, c], mean over seeds (effective context: the largest c still >= 0.01 bit below c/2)'
set xlabel 'context c (bytes, log2)'
set ylabel 'bits per byte'
set key outside right top
set grid
set logscale x 2
set title font ',10'
$e0 << EOD
1 3.937222
2 3.248262
4 2.882503
8 2.880173
16 2.649386
32 2.564080
64 2.383378
128 2.480264
256 2.548948
512 3.230396
1024 3.984417
2048 4.278931
4096 4.405097
EOD
$e1 << EOD
1 3.900115
2 3.156934
4 2.333829
8 2.067367
16 1.687276
32 1.662281
64 1.597008
128 1.539288
256 1.543417
512 1.636064
1024 1.740616
2048 2.108357
4096 3.339191
EOD
$e2 << EOD
1 3.915489
2 3.094700
4 2.363973
8 2.088347
16 1.694944
32 1.657942
64 1.587590
128 1.548817
256 1.551663
512 1.550982
1024 1.602297
2048 1.697546
4096 2.068088
EOD
$e3 << EOD
1 3.904465
2 3.198621
4 2.321811
8 2.034935
16 1.682655
32 1.681328
64 1.600337
128 1.544129
256 1.551607
512 1.565057
1024 1.648760
2048 1.992403
4096 3.400414
EOD
$e4 << EOD
1 3.921076
2 3.134532
4 2.310007
8 1.992397
16 1.666094
32 1.659643
64 1.593528
128 1.550559
256 1.561724
512 1.570940
1024 1.678192
2048 2.136230
4096 4.135200
EOD
$e5 << EOD
1 3.963145
2 3.185891
4 2.345776
8 2.019427
16 1.723154
32 1.661435
64 1.590613
128 1.545062
256 1.554895
512 1.581661
1024 1.713043
2048 2.126438
4096 3.672734
EOD
$e6 << EOD
1 3.941877
2 3.071963
4 2.330953
8 2.120835
16 1.721797
32 1.694759
64 1.634841
128 1.588602
256 1.598036
512 4.980973
1024 5.486442
2048 5.359591
4096 5.422123
EOD
$e7 << EOD
1 3.952012
2 2.990508
4 2.363682
8 2.095596
16 1.789880
32 1.746136
64 1.647433
128 1.598374
256 1.595604
512 1.590699
1024 1.611560
2048 1.617047
4096 1.613540
EOD
$e8 << EOD
1 3.931273
2 3.094377
4 2.375247
8 1.951029
16 1.671850
32 1.667485
64 1.650311
128 1.634618
256 1.639940
512 1.633449
1024 1.656127
2048 1.655286
4096 1.654404
EOD
plot $e0 using 1:2 with linespoints lw 2 lc rgb '#000000' pt 1 title 'nope', \
     $e1 using 1:2 with linespoints lw 2 lc rgb '#e41a1c' pt 2 title 'rope', \
     $e2 using 1:2 with linespoints lw 2 lc rgb '#377eb8' pt 3 title 'xpos', \
     $e3 using 1:2 with linespoints lw 2 lc rgb '#4daf4a' pt 4 title 'grape-m', \
     $e4 using 1:2 with linespoints lw 2 lc rgb '#984ea3' pt 5 title 'grape-m-ctx', \
     $e5 using 1:2 with linespoints lw 2 lc rgb '#ff7f00' pt 6 title 'grape-m-basis', \
     $e6 using 1:2 with linespoints lw 2 lc rgb '#a65628' pt 7 title 'grape-m-nc', \
     $e7 using 1:2 with linespoints lw 2 lc rgb '#f781bf' pt 8 title 'alibi', \
     $e8 using 1:2 with linespoints lw 2 lc rgb '#999999' pt 9 title 'fox'
