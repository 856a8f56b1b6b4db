set terminal pngcairo size 900,520 noenhanced
set output 'passkey_alibi.png'
set title 'passkey accuracy: alibi (full attention, seeds pooled)'
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
0 0 0.5500
0 1 0.5667
0 2 0.6167
0 3 0.6833
0 4 0.9333
1 0 0.3000
1 1 0.3833
1 2 0.4667
1 3 0.5000
1 4 0.9667
2 0 0.1500
2 1 0.1500
2 2 0.2000
2 3 0.4167
2 4 0.9000
3 0 0.0833
3 1 0.0833
3 2 0.1167
3 3 0.2500
3 4 0.9667
4 0 0.0667
4 1 0.0667
4 2 0.0667
4 3 0.1000
4 4 0.9333
EOD
plot $acc using 1:2:3 with image notitle, $acc using 1:2:(sprintf('%.2f', $3)) with labels notitle
