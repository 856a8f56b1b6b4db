set terminal pngcairo size 900,520 noenhanced
set output 'passkey_grape-m_grape-ap.png'
set title 'passkey accuracy: grape-m+grape-ap (full attention, seeds pooled)'
set xlabel 'context length (bytes)'
set ylabel 'needle depth (share of the filler)'
set cbrange [0:1]
set cblabel 'exact-match accuracy'
set palette defined (0 '#b2182b', 0.5 '#f7f7f7', 1 '#2166ac')
set xrange [-0.5:4.5]
set yrange [-0.5:4.5]
set xtics ("256" 0, "512" 1, "1024" 2, "2048" 3, "4096" 4)
set ytics ("0" 0, "0.25" 1, "0.5" 2, "0.75" 3, "1" 4)
$acc << EOD
0 0 0.3833
0 1 0.5833
0 2 0.9333
0 3 0.9333
0 4 0.9500
1 0 0.1000
1 1 0.1833
1 2 0.3167
1 3 0.9333
1 4 0.9833
2 0 0.0833
2 1 0.0833
2 2 0.1000
2 3 0.2667
2 4 0.9667
3 0 0.1167
3 1 0.1167
3 2 0.1167
3 3 0.1500
3 4 0.9833
4 0 0.0833
4 1 0.0833
4 2 0.0833
4 3 0.0833
4 4 0.9500
EOD
plot $acc using 1:2:3 with image notitle, $acc using 1:2:(sprintf('%.2f', $3)) with labels notitle
